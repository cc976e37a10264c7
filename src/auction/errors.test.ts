import { describe, expect, it } from 'vitest';
import {
  commonProblems,
  ERROR_CELL_COMMUNICATION,
  ERROR_EXCEEDED_INFLIGHT_CREATION,
  ERROR_ROOTFS_MISMATCH,
  ERROR_VOLUME_DRIVER_MISMATCH,
  filterErrorMessage,
  FilterStage,
  insufficientResourcesMessage,
  placementTagMismatchMessage,
} from './errors.ts';

describe('placement error strings', () => {
  it("are Diego's", () => {
    expect(ERROR_ROOTFS_MISMATCH).toBe('found no compatible cell for required rootfs');
    expect(ERROR_VOLUME_DRIVER_MISMATCH).toBe('found no compatible cell with required volume drivers');
    expect(ERROR_CELL_COMMUNICATION).toBe('unable to communicate to compatible cells');
    expect(ERROR_EXCEEDED_INFLIGHT_CREATION).toBe('waiting to start instance: reached in-flight start limit');
  });

  it('formats placement tag mismatches', () => {
    expect(placementTagMismatchMessage([])).toBe('found no compatible cell with no placement tags');
    expect(placementTagMismatchMessage(['a'])).toBe('found no compatible cell with placement tag "a"');
    expect(placementTagMismatchMessage(['a', 'b'])).toBe('found no compatible cell with placement tags "a" and "b"');
    expect(placementTagMismatchMessage(['a', 'b', 'c'])).toBe(
      'found no compatible cell with placement tags "a", "b" and "c"',
    );
  });

  it('formats insufficient resources with sorted keys', () => {
    expect(insufficientResourcesMessage([])).toBe('insufficient resources');
    expect(insufficientResourcesMessage(['memory'])).toBe('insufficient resources: memory');
    expect(insufficientResourcesMessage(['memory', 'containers', 'disk'])).toBe(
      'insufficient resources: containers, disk, memory',
    );
  });

  it('keeps only problems common to every failing cell', () => {
    expect(commonProblems([['memory', 'disk'], ['memory']])).toEqual(['memory']);
    expect(commonProblems([['memory'], ['disk']])).toEqual([]);
    expect(commonProblems([['disk', 'memory', 'containers']])).toEqual(['containers', 'disk', 'memory']);
  });

  it('picks the error of the furthest filter stage', () => {
    expect(filterErrorMessage(FilterStage.Rootfs, [])).toBe(ERROR_ROOTFS_MISMATCH);
    expect(filterErrorMessage(FilterStage.VolumeDrivers, [])).toBe(ERROR_VOLUME_DRIVER_MISMATCH);
    expect(filterErrorMessage(FilterStage.PlacementTags, ['x'])).toBe(
      'found no compatible cell with placement tag "x"',
    );
    expect(filterErrorMessage(FilterStage.Passed, [])).toBeUndefined();
  });
});
