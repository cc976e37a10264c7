// How kubectl diego prints: kubectl's aligned tables (header in capitals, columns three spaces apart), JSON or YAML
// for scripts, kubectl's short ages, and colour only on a terminal that has not asked for none (NO_COLOR).
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export type Colour = 'red' | 'green' | 'yellow' | 'grey' | 'bold';
/** A table cell: text, optionally coloured (the colour never counts in the alignment). */
export type Cell = string | { text: string; colour?: Colour };

const ANSI: Record<Colour, [string, string]> = {
  red: ['\u001b[31m', '\u001b[39m'],
  green: ['\u001b[32m', '\u001b[39m'],
  yellow: ['\u001b[33m', '\u001b[39m'],
  grey: ['\u001b[90m', '\u001b[39m'],
  bold: ['\u001b[1m', '\u001b[22m'],
};

/** Colour on a terminal unless NO_COLOR is set to something (https://no-color.org). */
export function useColour(isTTY: boolean | undefined, env: Record<string, string | undefined>): boolean {
  return isTTY === true && !env.NO_COLOR;
}

export function paint(text: string, colour: Colour | undefined, on: boolean): string {
  if (!on || !colour || text === '') return text;
  const [open, close] = ANSI[colour];
  return `${open}${text}${close}`;
}

const textOf = (c: Cell): string => (typeof c === 'string' ? c : c.text);

/** kubectl's table: every column as wide as its widest cell plus three spaces, the last one unpadded. */
export function renderTable(header: string[], rows: Cell[][], colour = false): string {
  const all: Cell[][] = [header.map((h) => ({ text: h.toUpperCase() })), ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => [...textOf(r[i] ?? '')].length)));
  const lines = all.map((r) =>
    header
      .map((_, i) => {
        const cell = r[i] ?? '';
        const text = textOf(cell);
        const shown = paint(text, typeof cell === 'string' ? undefined : cell.colour, colour);
        return i === header.length - 1 ? shown : shown + ' '.repeat(widths[i]! - [...text].length + 3);
      })
      .join('')
      .trimEnd(),
  );
  return lines.join('\n') + '\n';
}

/** Records as JSON (an array, two-space indented) or YAML (a sequence). */
export function renderData(data: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data);
}

/** kubectl's short duration (k8s.io/apimachinery duration.HumanDuration): 42s, 3m20s, 95m, 5h10m, 3d4h, 400d, 3y. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** The age of a timestamp at `now`, or <unknown> as kubectl prints it. */
export function ageOf(timestamp: string | Date | undefined, now: number): string {
  if (timestamp === undefined) return '<unknown>';
  const t = timestamp instanceof Date ? timestamp.getTime() : Date.parse(timestamp);
  return Number.isFinite(t) ? humanDuration(now - t) : '<unknown>';
}

/** kubectl's placeholder for an empty cell. */
export const NONE = '<none>';
