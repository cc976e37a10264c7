// Go's formatting of durations and byte sizes, because Diego's messages embed them ("exceeded 1m0s timeout",
// "Downloaded app (12.5M)") and users and tools match on them.

/** Go's time.Duration.String() for a duration in milliseconds: 0s, 200ms, 1.5s, 1m0s, 1h2m3.004s. */
export function goDuration(ms: number): string {
  let ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  ns = Math.abs(ns);
  if (ns < 1e9) {
    if (ns < 1e3) return `${sign}${ns}ns`;
    if (ns < 1e6) return `${sign}${decimal(ns, 1e3)}µs`;
    return `${sign}${decimal(ns, 1e6)}ms`;
  }
  const hours = Math.floor(ns / 3.6e12);
  ns -= hours * 3.6e12;
  const minutes = Math.floor(ns / 6e10);
  ns -= minutes * 6e10;
  const seconds = `${decimal(ns, 1e9)}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}

/** value/unit written with as many decimals as needed (no trailing zeros), from integers to avoid float noise. */
function decimal(value: number, unit: number): string {
  const whole = Math.floor(value / unit);
  const frac = value - whole * unit;
  if (frac === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(frac).padStart(digits, '0').replace(/0+$/, '')}`;
}

const BYTE_UNITS: [string, number][] = [
  ['E', 2 ** 60],
  ['P', 2 ** 50],
  ['T', 2 ** 40],
  ['G', 2 ** 30],
  ['M', 2 ** 20],
  ['K', 2 ** 10],
  ['B', 1],
];

/** code.cloudfoundry.org/bytefmt ByteSize: 0B, 512B, 1K, 12.5M (binary units, one decimal, ".0" trimmed). */
export function byteSize(bytes: number): string {
  if (bytes <= 0) return '0B';
  for (const [unit, size] of BYTE_UNITS) {
    if (bytes >= size) return `${(bytes / size).toFixed(1).replace(/\.0$/, '')}${unit}`;
  }
  return '0B';
}
