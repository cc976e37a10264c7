// Packs a root filesystem directory into a single-layer OCI image archive for `ctr images import`
// (src/lib/node/oci-archive.ts), e.g. the operator's image (hack/build-image.sh).
//   node hack/oci-archive.ts --rootfs DIR --out FILE --name REPO[:TAG] [--entrypoint JSON] [--cmd JSON]
//        [--user UID[:GID]] [--workdir DIR] [--env K=V]...
// Prints the image's config digest (sha256:...) on stdout.
import { parseArgs } from 'node:util';
import { buildArchive } from '../src/lib/node/oci-archive.ts';

const usage =
  'usage: node hack/oci-archive.ts --rootfs DIR --out FILE --name REPO[:TAG] [--entrypoint JSON] [--cmd JSON] ' +
  '[--user UID[:GID]] [--workdir DIR] [--env K=V]...';

const { values } = parseArgs({
  options: {
    rootfs: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string' },
    entrypoint: { type: 'string' },
    cmd: { type: 'string' },
    user: { type: 'string' },
    workdir: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
if (!values.rootfs || !values.out || !values.name) {
  console.error(usage);
  process.exit(2);
}
const json = (flag: string, v: string | undefined): string[] | undefined => {
  if (v === undefined) return undefined;
  const parsed: unknown = JSON.parse(v);
  if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === 'string'))
    throw new Error(`${flag} must be a JSON array of strings, e.g. '["/bin/sh","-c"]' (got ${v})`);
  return parsed;
};
console.log(
  buildArchive({
    rootfs: values.rootfs,
    out: values.out,
    name: values.name,
    entrypoint: json('--entrypoint', values.entrypoint),
    cmd: json('--cmd', values.cmd),
    user: values.user,
    workdir: values.workdir,
    env: values.env,
  }),
);
