// Asking before a link moves the user to another server: a link names the
// server it opens, and a hostile link could otherwise send people, their
// name and their camera to a server they never chose.

/** "This link opens … on <host>": join there, or stay. */
export function ServerConfirm({
  host,
  room,
  onAnswer,
}: {
  host: string;
  room?: string;
  onAnswer: (accept: boolean) => void;
}) {
  return (
    <div
      className="panel server-confirm"
      role="alertdialog"
      aria-labelledby="server-confirm-title"
      aria-describedby="server-confirm-text"
    >
      <h2 id="server-confirm-title">Open a link to another server?</h2>
      <p id="server-confirm-text">
        This link opens {room ? <>the room “{room}” </> : "Huddle "}on the server{" "}
        <strong className="host">{host}</strong>. Continue only if you trust whoever sent it: that server will see your
        name, your messages and whom you call.
      </p>
      <div className="actions">
        <button type="button" className="primary" autoFocus onClick={() => onAnswer(true)}>
          Continue to {host}
        </button>
        <button type="button" onClick={() => onAnswer(false)}>
          Stay here
        </button>
      </div>
    </div>
  );
}
