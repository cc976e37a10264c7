import { describe, expect, it } from 'vitest';
import { actualLRPName, asLabelValue, instanceLabels, placementPatch } from './names.ts';

describe('names and labels', () => {
  it('names ORDINARY instances by index and copies by presence', () => {
    expect(actualLRPName('web', 3)).toBe('web-3');
    expect(actualLRPName('web', 3, 'SUSPECT')).toBe('web-3-suspect');
    expect(actualLRPName('web', 3, 'EVACUATING')).toBe('web-3-evacuating');
  });

  it('labels the process guid only when it can be a label value', () => {
    expect(instanceLabels('uid-1', 0, 'web')).toEqual({
      'diego.dev/desired-lrp-uid': 'uid-1',
      'diego.dev/index': '0',
      'diego.dev/process-guid': 'web',
    });
    // Cloud Controller: <app guid>-<version guid>, 73 characters.
    const cc = 'a3b9c6f4-1b8e-4c3a-9d1e-2f3a4b5c6d7e-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
    expect(instanceLabels('uid-1', 0, cc)).not.toHaveProperty('diego.dev/process-guid');
    expect(asLabelValue('_starts-badly')).toBeUndefined();
    expect(asLabelValue('cell_z1-0')).toBe('cell_z1-0');
  });

  it('places and unplaces with the cell label in the same patch', () => {
    expect(placementPatch('cell_z1-0', { why: 'x' })).toEqual({
      metadata: { labels: { 'diego.dev/cell-id': 'cell_z1-0' }, annotations: { why: 'x' } },
      spec: { cellId: 'cell_z1-0' },
    });
    expect(placementPatch(null)).toEqual({
      metadata: { labels: { 'diego.dev/cell-id': null } },
      spec: { cellId: null },
    });
  });
});
