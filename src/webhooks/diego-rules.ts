// Cross-field rules of Diego's model validation (bbs models: cached_dependency.go, image_layer.go) and the few
// we add where Diego's cell would misbehave, for specs of DesiredLRPs and Tasks. Each error names its field.
import type { FieldError } from './validate.ts';

type Spec = Record<string, unknown>;
const list = (v: unknown): Record<string, unknown>[] =>
  Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

export function diegoRules(spec: Spec): FieldError[] {
  const errors: FieldError[] = [];
  const err = (field: string, message: string) => errors.push({ field, message });

  // CachedDependency.Validate: checksum algorithm and value together, algorithm md5/sha1/sha256. A relative `to`
  // cannot be bind-mounted (Diego passes it to Garden, which fails the container): refused here.
  list(spec.cachedDependencies).forEach((c, i) => {
    const f = `spec.cachedDependencies[${i}]`;
    if (str(c.checksumValue) && !str(c.checksumAlgorithm))
      err(`${f}.checksumAlgorithm`, 'is required with checksumValue');
    if (str(c.checksumAlgorithm) && !str(c.checksumValue))
      err(`${f}.checksumValue`, 'is required with checksumAlgorithm');
    if (str(c.to) && !str(c.to).startsWith('/')) err(`${f}.to`, 'must be an absolute path (it is a bind mount)');
  });

  // ImageLayer.Validate and validateImageLayers.
  let exclusive = false;
  list(spec.imageLayers).forEach((l, i) => {
    const f = `spec.imageLayers[${i}]`;
    const isExclusive = l.layerType === 'EXCLUSIVE';
    exclusive ||= isExclusive;
    if ((str(l.digestValue) || isExclusive) && !str(l.digestAlgorithm))
      err(`${f}.digestAlgorithm`, isExclusive ? 'is required for an EXCLUSIVE layer' : 'is required with digestValue');
    if ((str(l.digestAlgorithm) || isExclusive) && !str(l.digestValue))
      err(`${f}.digestValue`, isExclusive ? 'is required for an EXCLUSIVE layer' : 'is required with digestAlgorithm');
  });
  if (exclusive && !str(spec.legacyDownloadUser))
    err(
      'spec.legacyDownloadUser',
      'is required when imageLayers has an EXCLUSIVE layer (the user it is downloaded as)',
    );

  // Volume-mounted files land under /etc/cf-service-bindings: the path must name a file there.
  list(spec.volumeMountedFiles).forEach((file, i) => {
    const problem = serviceBindingPathProblem(str(file.path));
    if (problem) err(`spec.volumeMountedFiles[${i}].path`, problem);
  });

  // Cloud Controller sizes sidecars within their process: their memory must leave room for the app.
  const sidecars = list(spec.sidecars);
  const memory = num(spec.memoryMb);
  const sidecarMemory = sidecars.reduce((n, s) => n + num(s.memoryMb), 0);
  if (memory > 0 && sidecarMemory > 0 && sidecarMemory >= memory)
    err('spec.sidecars', `sidecars' memoryMb (${sidecarMemory}) must be less than the instance's memoryMb (${memory})`);
  const disk = num(spec.diskMb);
  const sidecarDisk = sidecars.reduce((n, s) => n + num(s.diskMb), 0);
  if (disk > 0 && sidecarDisk > disk)
    err('spec.sidecars', `sidecars' diskMb (${sidecarDisk}) must not exceed the instance's diskMb (${disk})`);

  // The task controller POSTs the callback: only http(s) (a file: or gopher: URL is not a callback).
  const callback = str(spec.completionCallbackUrl);
  if (callback && !/^https?:\/\//i.test(callback))
    err('spec.completionCallbackUrl', 'must be an http:// or https:// URL');
  return errors;
}

/** Why a volume-mounted file path is refused ('<service>/<file>', an optional leading '/', no '..'), if it is. */
export function serviceBindingPathProblem(p: string): string | undefined {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.length === 0) return "must name a file, e.g. 'mysql/uri'";
  if (parts.includes('..')) return "must not contain '..' (files stay under /etc/cf-service-bindings)";
  return undefined;
}
