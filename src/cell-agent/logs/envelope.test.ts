import { describe, expect, it } from 'vitest';
import { logEnvelope, logTags, nowNs, resolveMetricTags } from './envelope.ts';

describe('log envelopes', () => {
  it("resolves an LRP's metric tags for one instance like bbs ConvertMetricTags", () => {
    const tags = resolveMetricTags(
      {
        source_id: { static: 'app-guid' },
        process_id: { static: 'process-guid' },
        instance_id: { dynamic: 'INDEX' },
        process_instance_id: { dynamic: 'INSTANCE_GUID' },
      },
      { index: 2, instanceGuid: 'ig-1' },
    );
    expect(tags).toEqual({
      source_id: 'app-guid',
      process_id: 'process-guid',
      instance_id: '2',
      process_instance_id: 'ig-1',
    });
    // A task has no index nor instance guid: those tags are left out.
    expect(resolveMetricTags({ x: { dynamic: 'INDEX' }, y: { static: 'v' } }, {})).toEqual({ y: 'v' });
  });

  it('fills source_id with the log guid and instance_id with the index unless the tags set them', () => {
    expect(logTags('log-guid', 3, { app_id: 'a' })).toEqual({ app_id: 'a', source_id: 'log-guid', instance_id: '3' });
    expect(logTags('log-guid', 3, { source_id: 'app-guid' }).source_id).toBe('app-guid');
  });

  it('shapes a line as a Loggregator v2 envelope with source_type in the tags and a nanosecond timestamp', () => {
    const before = BigInt(Date.now()) * 1_000_000n;
    const e = logEnvelope({ source_id: 'g', instance_id: '1', app_id: 'a' }, 'APP/PROC/WEB', 'ERR', 'boom');
    expect(e).toMatchObject({
      source_id: 'g',
      instance_id: '1',
      tags: { app_id: 'a', source_type: 'APP/PROC/WEB' },
      log: { payload: 'boom', type: 'ERR' },
    });
    expect(BigInt(e.timestamp)).toBeGreaterThanOrEqual(before);
    expect(nowNs(1_700_000_000_000)).toMatch(/^1700000000000\d{6}$/);
  });
});
