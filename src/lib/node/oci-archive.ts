// Packs a root filesystem directory into a single-layer OCI image archive (an OCI layout in a tar), without Docker or a
// registry, for `ctr images import` (containerd reads the image's name from the index's io.containerd.image.name
// annotation). Reproducible: the layer is a tar sorted by name with zeroed times and owners kept numerically, gzip
// without a name or time, so the same tree gives the same digests; the archive's tag can be the config's digest.
// The command line is hack/oci-archive.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface ImageSpec {
  rootfs: string;
  out: string;
  name: string;
  entrypoint?: string[];
  cmd?: string[];
  user?: string;
  workdir?: string;
  env?: string[];
  /** Tag the image with the first 12 hex digits of its config's digest (`name` is then the repository only). */
  tagFromDigest?: boolean;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Writes the archive; answers the config's digest and the image's name (with its tag). */
export function buildArchive(spec: ImageSpec): { digest: string; name: string } {
  const work = mkdtempSync(join(tmpdir(), 'oci-archive-'));
  try {
    // The layer: GNU tar sorted by name, times zeroed, numeric owners as they are in the tree.
    const layer = execFileSync(
      'tar',
      [
        '--sort=name',
        '--mtime=@0',
        '--numeric-owner',
        '--format=posix',
        '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
        '-C',
        resolve(spec.rootfs),
        '-cf',
        '-',
        '.',
      ],
      { maxBuffer: 4 * 2 ** 30 },
    );
    const gz = gzipSync(layer, { level: 6 });
    const blobs = join(work, 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    const put = (b: Buffer | string) => {
      const d = sha256(b);
      writeFileSync(join(blobs, d), b);
      return { digest: `sha256:${d}`, size: Buffer.byteLength(b) };
    };
    const layerBlob = put(gz);
    const config = JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: {
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...(spec.env ?? [])],
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'hack/oci-archive.ts' }],
    });
    const configBlob = put(config);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerBlob }],
    });
    const manifestBlob = put(manifest);
    const hasTag = spec.name.includes(':', spec.name.lastIndexOf('/'));
    const tag = spec.tagFromDigest
      ? configBlob.digest.slice('sha256:'.length, 'sha256:'.length + 12)
      : hasTag
        ? spec.name.slice(spec.name.lastIndexOf(':') + 1)
        : 'latest';
    const name = `${hasTag ? spec.name.slice(0, spec.name.lastIndexOf(':')) : spec.name}:${tag}`;
    writeFileSync(
      join(work, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifestBlob,
            annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag },
          },
        ],
      }),
    );
    writeFileSync(join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    execFileSync('tar', [
      '--sort=name',
      '--mtime=@0',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      work,
      '-cf',
      resolve(spec.out),
      'oci-layout',
      'index.json',
      'blobs',
    ]);
    return { digest: configBlob.digest, name };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * An image made from this host's busybox-static, written once into `dir` as `file`: `fill` lays out the root
 * filesystem (busybox is in /bin already). Answers the archive's path and the image's name.
 */
function busyboxBased(
  dir: string,
  file: string,
  spec: Omit<ImageSpec, 'rootfs' | 'out'>,
  fill: (rootfs: string) => void = () => {},
): { archive: string; name: string } {
  const archive = join(dir, file);
  if (!existsSync(archive)) {
    const rootfs = mkdtempSync(join(tmpdir(), 'busybox-rootfs-'));
    try {
      mkdirSync(join(rootfs, 'bin'));
      copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
      fill(rootfs);
      buildArchive({ ...spec, rootfs, out: `${archive}.tmp` });
      renameSync(`${archive}.tmp`, archive);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  }
  return { archive, name: spec.name };
}

/**
 * The pod sandbox ("pause") image: a process that sleeps until killed, which is all a sandbox's first process has to
 * do when pods do not share a PID namespace.
 */
export const pauseImage = (dir: string) =>
  busyboxBased(dir, 'pause.oci.tar', {
    name: 'diego.dev/pause:1',
    entrypoint: ['/bin/busybox', 'sleep', '2147483647'],
  });

/** A busybox image (its applets linked in /bin, root and nobody users) for test pods. */
export const busyboxImage = (dir: string) =>
  busyboxBased(dir, 'busybox.oci.tar', { name: 'diego.dev/busybox:1', cmd: ['/bin/sh'] }, (rootfs) => {
    for (const d of ['tmp', 'etc']) mkdirSync(join(rootfs, d));
    execFileSync(join(rootfs, 'bin', 'busybox'), ['--install', '-s', join(rootfs, 'bin')]);
    // --install links to the absolute path it ran from: make the links relative to the image's /bin/busybox.
    for (const f of readdirSync(join(rootfs, 'bin')).filter((f) => f !== 'busybox')) {
      rmSync(join(rootfs, 'bin', f));
      symlinkSync('busybox', join(rootfs, 'bin', f));
    }
    writeFileSync(
      join(rootfs, 'etc', 'passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
    );
    writeFileSync(join(rootfs, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  });
