// Generated avatars: a colour pair and initials derived from the member's
// id and name, so everyone sees the same avatar for the same member.

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters =
    words.length > 1 ? [words[0], words[words.length - 1]].map((w) => [...w][0]) : [...(words[0] ?? "?")].slice(0, 2);
  return letters.join("").toUpperCase();
}

export function avatarColors(id: string, name: string): [string, string] {
  const h = hash(`${id}:${name}`);
  const hue = h % 360;
  const hue2 = (hue + 40 + ((h >> 9) % 60)) % 360;
  return [`hsl(${hue} 70% 52%)`, `hsl(${hue2} 75% 42%)`];
}

export function Avatar({
  id,
  name,
  size = 36,
  speaking = false,
}: {
  id: string;
  name: string;
  size?: number;
  speaking?: boolean;
}) {
  const [a, b] = avatarColors(id, name);
  return (
    <span
      className={`avatar${speaking ? " speaking" : ""}`}
      style={{ width: size, height: size, fontSize: size * 0.38, background: `linear-gradient(135deg, ${a}, ${b})` }}
      aria-hidden="true"
    >
      {initials(name)}
    </span>
  );
}
