// A small W3C WebDriver client (fetch only) for the desktop app's window,
// driven through tauri-driver and WebKitWebDriver.

export class WebDriver {
  constructor(base, session) {
    this.base = base;
    this.session = session;
  }

  /** Opens a session on the app at `application` (tauri-driver launches it, with `args`). */
  static async open(base, application, args = []) {
    const r = await fetch(`${base}/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application, args } } },
      }),
    });
    const body = await r.json();
    if (!r.ok || !body.value?.sessionId) throw new Error(`no WebDriver session: ${JSON.stringify(body)}`);
    return new WebDriver(base, body.value.sessionId);
  }

  async command(method, path, body, timeoutMs = 60_000) {
    const r = await fetch(`${this.base}/session/${this.session}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${json.value?.message ?? JSON.stringify(json)}`);
    return json.value;
  }

  /** Runs `script` (a function body; `arguments` holds `args`) in the window. */
  execute(script, ...args) {
    return this.command("POST", "/execute/sync", { script, args });
  }

  /** Polls `script` until it returns something truthy (the condition a user would see). */
  async waitFor(script, { timeout = 30_000, every = 200, what = script } = {}, ...args) {
    const deadline = Date.now() + timeout;
    let last;
    while (Date.now() < deadline) {
      last = await this.execute(script, ...args).catch((e) => ({ error: e.message }));
      if (last && !last.error) return last;
      await new Promise((r) => setTimeout(r, every));
    }
    throw new Error(`timed out waiting for: ${what} (last: ${JSON.stringify(last)})`);
  }

  async find(css) {
    return this.element(await this.command("POST", "/element", { using: "css selector", value: css }));
  }

  async findXPath(xpath) {
    return this.element(await this.command("POST", "/element", { using: "xpath", value: xpath }));
  }

  /** An element reference's id (remembering the key W3C names it by). */
  element(reference) {
    const [key, id] = Object.entries(reference)[0];
    this.elementKey = key;
    return id;
  }

  async click(element) {
    await this.command("POST", `/element/${element}/click`, {});
  }

  /** Replaces an input's text: emptied the way React notices, then typed key by key. */
  async type(element, text) {
    await this.execute(
      `const el = arguments[0];
       const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
       Object.getOwnPropertyDescriptor(proto, "value").set.call(el, "");
       el.dispatchEvent(new Event("input", { bubbles: true }));`,
      { [this.elementKey]: element },
    );
    if (text) await this.command("POST", `/element/${element}/value`, { text });
  }

  /** The session's window handles. */
  handles() {
    return this.command("GET", "/window/handles");
  }

  /** The window commands go to from now on. */
  switchTo(handle) {
    return this.command("POST", "/window", { handle });
  }

  async clickButton(label) {
    await this.click(await this.findXPath(`//button[contains(normalize-space(.), ${JSON.stringify(label)})]`));
  }

  /**
   * The window as a PNG. (WebKitWebDriver waits for the page to paint; with
   * software painting a still page may not, so this is for pages that move,
   * e.g. a call.)
   */
  async screenshot() {
    return Buffer.from(await this.command("GET", "/screenshot"), "base64");
  }

  async close() {
    await fetch(`${this.base}/session/${this.session}`, { method: "DELETE" }).catch(() => undefined);
  }
}
