// Root filesystem URLs of images → the fully qualified references containerd pulls. Diego writes docker images
// as URLs: 'docker:///cloudfoundry/grace#v1' (no host: Docker Hub; the fragment is the tag) and
// 'docker://registry.example.com:5000/team/app#v1' (the host is the registry) — grootfs turns them into
// '//[host]/path[:fragment]' references. We also accept Docker's own notation after 'docker://'
// ('docker://busybox:1.36', 'docker://127.0.0.1:5000/busybox:latest', '...@sha256:<hex>'); there, as in
// Docker, the first path component is a registry only when it has a '.' or a ':' or is 'localhost'.
// Docker Hub names without a slash live under 'library/' and the default tag is 'latest'.

export interface ImageRef {
  /** Registry host[:port], 'docker.io' for Docker Hub. */
  registry: string;
  /** Repository path in the registry, e.g. 'library/busybox'. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The reference ctr understands: registry/repository[:tag][@digest]. */
  ref: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/** Parses a 'docker://' rootfs URL; throws an error naming the URL and what is wrong with it. */
export function parseDockerRootfs(url: string): ImageRef {
  const m = /^docker:\/\/(.*)$/i.exec(url);
  if (!m) throw new Error(`rootfs '${url}' is not a docker:// URL`);
  let rest = m[1]!;
  let fragment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let registry: string;
  if (rest.startsWith('/')) {
    registry = 'docker.io'; // Diego's 'docker:///repo': no host
    rest = rest.slice(1);
  } else {
    const slash = rest.indexOf('/');
    const first = slash >= 0 ? rest.slice(0, slash) : '';
    if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      registry = first;
      rest = rest.slice(slash + 1);
    } else {
      registry = 'docker.io';
    }
  }
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag = fragment;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    if (tag !== undefined) throw new Error(`rootfs '${url}' names a tag twice (':' and '#')`);
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (fragment !== undefined && DIGEST.test(fragment)) {
    digest = fragment;
    tag = undefined;
  }
  let repository = rest.replace(/\/+$/, '');
  if (registry === 'docker.io' && repository !== '' && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '' || !repository.split('/').every((c) => COMPONENT.test(c))) {
    throw new Error(
      `rootfs '${url}' has no valid repository name (lowercase letters, digits and . _ - separated by /), e.g. docker:///busybox#latest`,
    );
  }
  if (tag !== undefined && !TAG.test(tag)) throw new Error(`rootfs '${url}' has an invalid tag '${tag}'`);
  if (digest !== undefined && !DIGEST.test(digest)) {
    throw new Error(`rootfs '${url}' has an invalid digest '${digest}' (expected sha256:<64 hex digits>)`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  const ref = `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}), ref };
}

/** Registries reached over plain HTTP: loopback ones (as Docker treats them) and those configured as insecure. */
export function isPlainHttpRegistry(registry: string, insecure: readonly string[] = []): boolean {
  if (insecure.includes(registry)) return true;
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.split(':')[0]!;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
