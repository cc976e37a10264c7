// OCI images built from a root filesystem directory, without docker or a registry. The containerd backend needs
// one to run 'preloaded:<stack>' containers (containerd runs images, not directories), and the tests serve the
// same image from a loopback registry to pull it as 'docker://'. An image is one gzip layer (a tar of the
// directory), a config and a manifest (image-spec v1); writeOciLayoutTar packs them as an OCI image layout
// (oci-layout, index.json naming the image with org.opencontainers.image.ref.name, blobs/sha256/...) that
// `ctr images import` reads.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { DEFAULT_PATH } from './process.ts';

const execFileAsync = promisify(execFile);
const gzipAsync = promisify(gzip);

const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export interface Blob {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface OciImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

function blobOf(mediaType: string, bytes: Buffer): Blob {
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, mediaType, bytes };
}

/** The image-spec architecture name of this machine (Node's 'x64' is 'amd64'). */
function ociArchitecture(arch: string = process.arch): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as const)[
    arch as 'x64'
  ];
}

/**
 * An image whose only layer is the directory `rootfs` (owners kept numerically, so vcap's home stays uid 2000).
 * `env` defaults to PATH; `cmd` to /bin/sh.
 */
export async function buildOciImage(rootfs: string, opts: { env?: string[]; cmd?: string[] } = {}): Promise<OciImage> {
  const { stdout: tar } = await execFileAsync('tar', ['--numeric-owner', '-c', '-f', '-', '-C', rootfs, '.'], {
    encoding: 'buffer',
    maxBuffer: 1024 * 1024 * 1024,
  });
  const diffId = blobOf('application/vnd.oci.image.layer.v1.tar', tar).digest;
  const layer = blobOf(MEDIA_TYPE_LAYER, await gzipAsync(tar));
  const config = blobOf(
    MEDIA_TYPE_CONFIG,
    Buffer.from(
      JSON.stringify({
        created: new Date(0).toISOString(),
        architecture: ociArchitecture(),
        os: 'linux',
        config: { Env: opts.env ?? [`PATH=${DEFAULT_PATH}`], Cmd: opts.cmd ?? ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    ),
  );
  const manifest = blobOf(
    MEDIA_TYPE_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE_MANIFEST,
        config: { mediaType: config.mediaType, digest: config.digest, size: config.bytes.length },
        layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.length }],
      }),
    ),
  );
  return { manifest, config, layers: [layer] };
}

/** Writes `image` as an OCI image layout tarball at `file`, the image named `refName` in index.json. */
export async function writeOciLayoutTar(image: OciImage, refName: string, file: string): Promise<void> {
  const dir = await mkdtemp(`${file}.layout-`);
  try {
    const blobs = path.join(dir, 'blobs', 'sha256');
    await mkdir(blobs, { recursive: true });
    for (const b of [image.manifest, image.config, ...image.layers]) {
      await writeFile(path.join(blobs, b.digest.slice('sha256:'.length)), b.bytes);
    }
    await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: image.manifest.mediaType,
          digest: image.manifest.digest,
          size: image.manifest.bytes.length,
          annotations: { [REF_NAME_ANNOTATION]: refName },
        },
      ],
    };
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    await execFileAsync('tar', ['-c', '-f', file, '-C', dir, 'oci-layout', 'index.json', 'blobs']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
