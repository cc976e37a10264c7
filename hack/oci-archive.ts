// Packs a root filesystem directory into a single-layer OCI image archive for `ctr images import`
// (src/lib/node/oci-archive.ts), e.g. the operator's image (hack/build-image.sh).
//   node hack/oci-archive.ts --rootfs DIR --out FILE --name REPO[:TAG] [--entrypoint JSON] [--cmd JSON]
//        [--user UID[:GID]] [--workdir DIR] [--env K=V]... [--tag-from-digest]
// Prints the image's config digest (sha256:...) and its name on stdout. --tag-from-digest: NAME is the repository,
// the tag is the first 12 hex digits of the config's digest.
import { parseArgs } from 'node:util';
import { buildArchive } from '../src/lib/node/oci-archive.ts';

const usage =
  'usage: node hack/oci-archive.ts --rootfs DIR --out FILE --name REPO[:TAG] [--entrypoint JSON] [--cmd JSON] ' +
  '[--user UID[:GID]] [--workdir DIR] [--env K=V]... [--tag-from-digest]';

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
    'tag-from-digest': { type: 'boolean', default: false },
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
const built = buildArchive({
  rootfs: values.rootfs,
  out: values.out,
  name: values.name,
  entrypoint: json('--entrypoint', values.entrypoint),
  cmd: json('--cmd', values.cmd),
  user: values.user,
  workdir: values.workdir,
  env: values.env,
  tagFromDigest: values['tag-from-digest'],
});
console.log(`${built.digest} ${built.name}`);
