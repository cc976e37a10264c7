// Root filesystems for the runc and containerd backends, built once per machine into a cache directory
// ($DIEGO_ROOTFS_DIR, else ~/.cache/diego-operator/rootfs) and shared read-only by every container (each container
// writes to an overlay upper dir or its own copy, see runc.ts; containerd imports them as images, containerd.ts).
// There are two:
//
// * 'busybox': Debian's busybox-static as /bin/busybox plus one symlink per applet (sh, echo, tar, httpd, ...),
//   an /etc/passwd with root and vcap (uid 2000, as in cflinuxfs) and empty mount points. Built in well under a
//   second from the host's busybox-static.
// * 'debian': what cflinuxfs apps expect, minus the size: a Debian bookworm root filesystem built with mmdebstrap
//   (--variant=minbase plus DEBIAN_PACKAGES: bash, coreutils, curl, netcat-openbsd, ca-certificates, procps,
//   openssl, ...) with merged /usr, without man pages, docs (copyrights stay) and translations (dpkg
//   path-excludes that stay in the image, as in Docker's slim images), with the vcap user (uid/gid 2000, home
//   /home/vcap, bash) and no /etc/resolv.conf. It is named after a hash of its recipe (debian-bookworm-<hash>), so
//   changing the package list builds a new one. Building takes about a minute on 2 cores (mmdebstrap in root
//   mode: needs root and Debian's mmdebstrap, which hack/install-deps.sh installs); the .debs it downloads are
//   kept in <cacheDir>/debian-debs for the next build. Mirrors: $DIEGO_DEBIAN_MIRROR (default
//   http://deb.debian.org/debian, for bookworm and bookworm-updates) and $DIEGO_DEBIAN_SECURITY_MIRROR (default
//   http://deb.debian.org/debian-security).
//
// A rootfs is built aside and renamed into place, so a directory that exists is complete. Two builders in one
// process share a promise; two processes on one machine (agents, test files) take a lock file for the Debian
// build (flock, held by the build's own shell, so a builder whose agent died still finishes or fails on its own
// before the next one starts) and the second finds the first one's result.
//
// Stacks: a cell offers 'preloaded:<stack>' for each of its stacks, and each stack names one of these root
// filesystems (StackMap, from the cell agent's --stacks flag: `busybox`, `cflinuxfs4=debian`, see parseStacks).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, chown, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Where Debian's busybox-static installs the binary. */
export const BUSYBOX_BINARY = '/bin/busybox';

export const ETC_PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'vcap:x:2000:2000:vcap:/home/vcap:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

export const ETC_GROUP = ['root:x:0:', 'vcap:x:2000:', 'nogroup:x:65534:', ''].join('\n');

/** The root filesystems this module builds. */
export const PRELOADED_ROOTFS = ['busybox', 'debian'] as const;
export type PreloadedRootfs = (typeof PRELOADED_ROOTFS)[number];

/** A cell's stacks: stack name (the <stack> of 'preloaded:<stack>') → the root filesystem it runs. */
export type StackMap = Readonly<Record<string, PreloadedRootfs>>;

/** What a backend offers when it is given no stacks: preloaded:busybox only. */
export const DEFAULT_STACKS: StackMap = { busybox: 'busybox' };

/** Stack names without '=<rootfs>' that are understood anyway: the rootfs names and Cloud Foundry's stacks. */
function defaultRootfsOf(stack: string): PreloadedRootfs | undefined {
  if ((PRELOADED_ROOTFS as readonly string[]).includes(stack)) return stack as PreloadedRootfs;
  if (/^cflinuxfs\d+$/.test(stack)) return 'debian';
  return undefined;
}

/**
 * The cell agent's --stacks entries as a StackMap. Each entry is `<stack>=<rootfs>` (rootfs: busybox or debian),
 * or a bare `<stack>` when the rootfs is obvious: `busybox` and `debian` are themselves, `cflinuxfs<N>` is debian.
 * Any other bare name is an error (a typo must not silently build the Debian rootfs).
 */
export function parseStacks(entries: readonly string[]): StackMap {
  const stacks: Record<string, PreloadedRootfs> = {};
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === '') continue;
    const i = entry.indexOf('=');
    const stack = i < 0 ? entry : entry.slice(0, i);
    const rootfs = i < 0 ? defaultRootfsOf(stack) : entry.slice(i + 1);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(stack)) {
      throw new Error(`--stacks: '${entry}' has no valid stack name (letters, digits, '.', '_', '-')`);
    }
    if (rootfs === undefined) {
      throw new Error(
        `--stacks: which root filesystem does stack '${stack}' run? Write ${stack}=busybox or ${stack}=debian`,
      );
    }
    if (!(PRELOADED_ROOTFS as readonly string[]).includes(rootfs)) {
      throw new Error(`--stacks: '${entry}': unknown root filesystem '${rootfs}' (${PRELOADED_ROOTFS.join(' or ')})`);
    }
    if (stacks[stack] !== undefined && stacks[stack] !== rootfs) {
      throw new Error(`--stacks: stack '${stack}' is given twice, with ${stacks[stack]} and ${rootfs}`);
    }
    stacks[stack] = rootfs as PreloadedRootfs;
  }
  if (Object.keys(stacks).length === 0) throw new Error('--stacks: no stack given (e.g. --stacks busybox)');
  return stacks;
}

/**
 * The root filesystem a rootfs URL runs on: 'preloaded:<stack>' for a stack in `stacks`; no URL at all is busybox
 * (the backends' default). Rejects every other URL with "unsupported rootfs '<url>' (...)".
 */
export function preloadedRootfsOf(
  url: string | undefined,
  stacks: StackMap = DEFAULT_STACKS,
  /** What else the backend runs, for the message (e.g. 'docker://<image>'). */
  others: string[] = [],
): PreloadedRootfs {
  if (url === undefined) return 'busybox';
  const m = /^preloaded:(.+)$/.exec(url);
  const rootfs = m && Object.hasOwn(stacks, m[1]!) ? stacks[m[1]!] : undefined;
  if (rootfs) return rootfs;
  const offered = [...Object.keys(stacks).map((s) => `preloaded:${s}`), ...others].join(', ');
  throw new Error(`unsupported rootfs '${url}' (this cell runs ${offered || 'no preloaded stack'})`);
}

export function defaultRootfsCacheDir(): string {
  return process.env.DIEGO_ROOTFS_DIR ?? path.join(homedir(), '.cache', 'diego-operator', 'rootfs');
}

/** The rootfs directory for a rootfs URL (see preloadedRootfsOf), built on first use. */
export async function resolveRootfs(
  url: string | undefined,
  cacheDir = defaultRootfsCacheDir(),
  stacks: StackMap = DEFAULT_STACKS,
): Promise<string> {
  return ensureRootfs(preloadedRootfsOf(url, stacks), cacheDir);
}

/** Builds the root filesystem `rootfs` once (see the header) and returns its directory. */
export function ensureRootfs(rootfs: PreloadedRootfs, cacheDir = defaultRootfsCacheDir()): Promise<string> {
  return rootfs === 'debian' ? ensureDebianRootfs(cacheDir) : ensureBusyboxRootfs(cacheDir);
}

/**
 * The name of a root filesystem's directory in the cache; it changes with its recipe, so the containerd backend
 * names its image after it too.
 */
export function rootfsId(rootfs: PreloadedRootfs): string {
  return rootfs === 'debian' ? `debian-${DEBIAN_SUITE}-${debianRecipeKey()}` : 'busybox';
}

const building = new Map<string, Promise<string>>();

/** One build per directory in this process; later callers share it. */
function once(dir: string, build: () => Promise<string>): Promise<string> {
  let pending = building.get(dir);
  if (!pending) {
    pending = build().finally(() => building.delete(dir));
    building.set(dir, pending);
  }
  return pending;
}

/** Builds <cacheDir>/busybox once (atomically: built aside, then renamed into place) and returns its path. */
export function ensureBusyboxRootfs(cacheDir = defaultRootfsCacheDir()): Promise<string> {
  const dir = path.join(path.resolve(cacheDir), 'busybox');
  return once(dir, () => buildBusyboxOnce(dir));
}

async function buildBusyboxOnce(dir: string): Promise<string> {
  if (await exists(path.join(dir, 'bin', 'busybox'))) return dir;
  if (!(await exists(BUSYBOX_BINARY))) {
    throw new Error(`${BUSYBOX_BINARY} is missing: install Debian's busybox-static (hack/install-deps.sh)`);
  }
  await mkdir(path.dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    await buildBusyboxRootfs(tmp);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another agent on this machine won the race: its copy is as good as ours.
      if (!(await exists(path.join(dir, 'bin', 'busybox')))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Writes a busybox root filesystem into the (existing, empty) directory `root`. */
export async function buildBusyboxRootfs(root: string): Promise<void> {
  await chmod(root, 0o755);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'root', 'home/vcap', 'var/tmp']) {
    await mkdir(path.join(root, d), { recursive: true, mode: 0o755 });
  }
  await mkdir(path.join(root, 'tmp'), { mode: 0o1777 });
  await chmod(path.join(root, 'tmp'), 0o1777);
  await copyFile(BUSYBOX_BINARY, path.join(root, 'bin', 'busybox'));
  await chmod(path.join(root, 'bin', 'busybox'), 0o755);
  const { stdout } = await execFileAsync(BUSYBOX_BINARY, ['--list']);
  for (const applet of stdout.split('\n')) {
    // `busybox --list` names busybox itself: a symlink there would replace the binary with a loop.
    if (applet === '' || applet === 'busybox' || applet.includes('/')) continue;
    await symlink('busybox', path.join(root, 'bin', applet));
  }
  await writeFile(path.join(root, 'etc', 'passwd'), ETC_PASSWD);
  await writeFile(path.join(root, 'etc', 'group'), ETC_GROUP);
  await writeFile(path.join(root, 'etc', 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  await chown(path.join(root, 'home', 'vcap'), 2000, 2000);
}

export const DEBIAN_SUITE = 'bookworm';

/** Installed on top of minbase (which has bash, coreutils, tar, gzip, grep, sed, findutils, passwd, ...). */
export const DEBIAN_PACKAGES = [
  'bash',
  'coreutils',
  'curl',
  'netcat-openbsd',
  'ca-certificates',
  'openssl',
  'procps',
  'tar',
  'gzip',
  'xz-utils',
  'unzip',
  'netbase',
  'tzdata',
  'passwd',
];

// Run under `flock <lock>` with DIR, DEBS, SUITE, INCLUDE, MIRROR and SECURITY_MIRROR in the environment. The
// hooks run on the host (root mode) with the chroot as $1: the setup hook puts the cached .debs where apt looks
// first; the customize hook drops the ones apt can no longer download (autoclean) and keeps the rest for the
// next build (essential/unlink is skipped so that the essential set's .debs are still there).
const DEBIAN_BUILD_SCRIPT = String.raw`set -eu
if [ -x "$DIR/usr/bin/bash" ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "building the Debian rootfs needs root (mmdebstrap --mode=root)" >&2; exit 1; fi
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: install Debian's mmdebstrap (hack/install-deps.sh)" >&2; exit 1; }
# A build that was killed half-way: unmount what it left mounted (deepest first), then remove it without crossing
# into any mount.
for old in "$DIR".tmp-*; do
  [ -e "$old" ] || continue
  awk -v p="$old/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || :; done
  rm -rf --one-file-system "$old"
done
tmp="$DIR.tmp-$$"
trap 'rm -rf --one-file-system "$tmp"' EXIT
mkdir -p "$DEBS"
mmdebstrap --mode=root --format=directory --variant=minbase --include="$INCLUDE" \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --skip=essential/unlink \
  --setup-hook='mkdir -p "$1/var/cache/apt/archives" && find "$DEBS" -maxdepth 1 -name "*.deb" -exec cp -t "$1/var/cache/apt/archives/" {} +' \
  --customize-hook='APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get -qq autoclean && find "$DEBS" -maxdepth 1 -name "*.deb" -delete && find "$1/var/cache/apt/archives" -maxdepth 1 -name "*.deb" -exec cp -t "$DEBS/" {} +' \
  "$SUITE" "$tmp" \
  "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main"
chroot "$tmp" groupadd --gid 2000 vcap
chroot "$tmp" useradd --uid 2000 --gid 2000 --create-home --home-dir /home/vcap --shell /bin/bash vcap
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$tmp/etc/hosts"
echo localhost > "$tmp/etc/hostname"
rm -f "$tmp/etc/resolv.conf"
mv -T "$tmp" "$DIR"
`;

/** What the Debian rootfs is built from; its hash names the directory. Bump the version when the script changes. */
function debianRecipeKey(): string {
  const recipe = JSON.stringify({ v: 1, suite: DEBIAN_SUITE, packages: DEBIAN_PACKAGES, script: DEBIAN_BUILD_SCRIPT });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 12);
}

/**
 * Builds <cacheDir>/debian-bookworm-<recipe hash> once per machine (see the header) and returns its path. The
 * first build downloads about 45 MB of .debs and takes about a minute.
 */
export function ensureDebianRootfs(cacheDir = defaultRootfsCacheDir()): Promise<string> {
  const root = path.resolve(cacheDir);
  const dir = path.join(root, rootfsId('debian'));
  return once(dir, async () => {
    if (await exists(path.join(dir, 'usr', 'bin', 'bash'))) return dir;
    await mkdir(root, { recursive: true });
    try {
      await execFileAsync('flock', [path.join(root, 'debian.lock'), 'sh', '-c', DEBIAN_BUILD_SCRIPT], {
        env: {
          ...process.env,
          DIR: dir,
          DEBS: path.join(root, 'debian-debs'),
          SUITE: DEBIAN_SUITE,
          INCLUDE: DEBIAN_PACKAGES.join(','),
          MIRROR: process.env.DIEGO_DEBIAN_MIRROR || 'http://deb.debian.org/debian',
          SECURITY_MIRROR: process.env.DIEGO_DEBIAN_SECURITY_MIRROR || 'http://deb.debian.org/debian-security',
        },
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      const tail = (e.stderr ?? '').trim().split('\n').slice(-15).join('\n');
      throw new Error(`building the Debian rootfs (${dir}) failed: ${tail || e.message}`, { cause: err });
    }
    if (!(await exists(path.join(dir, 'usr', 'bin', 'bash')))) {
      throw new Error(`building the Debian rootfs left no ${dir}`);
    }
    return dir;
  });
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}
