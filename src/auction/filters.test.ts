import { describe, expect, it } from 'vitest';
import { FilterStage } from './errors.ts';
import {
  filterStage,
  matchPlacementTags,
  matchVolumeDrivers,
  maskToProblems,
  resourceProblemMask,
  resourceProblems,
} from './filters.ts';
import { makeCell } from './testing.ts';

describe('matchVolumeDrivers', () => {
  it('needs every requested driver on the cell', () => {
    expect(matchVolumeDrivers([], [])).toBe(true);
    expect(matchVolumeDrivers(['nfs', 'smb'], ['nfs'])).toBe(true);
    expect(matchVolumeDrivers(['nfs', 'smb'], ['nfs', 'smb'])).toBe(true);
    expect(matchVolumeDrivers(['nfs'], ['nfs', 'smb'])).toBe(false);
    expect(matchVolumeDrivers([], ['nfs'])).toBe(false);
  });
});

describe('matchPlacementTags', () => {
  it('lands untagged work only on cells without required tags', () => {
    expect(matchPlacementTags([], [], [])).toBe(true);
    expect(matchPlacementTags([], ['gpu'], [])).toBe(true);
    expect(matchPlacementTags(['isolated'], [], [])).toBe(false);
  });

  it('requires cell.required ⊆ desired and desired ⊆ required ∪ optional', () => {
    expect(matchPlacementTags(['a'], [], ['a'])).toBe(true);
    expect(matchPlacementTags(['a'], ['b'], ['a', 'b'])).toBe(true);
    expect(matchPlacementTags(['a', 'b'], [], ['a'])).toBe(false);
    expect(matchPlacementTags(['a'], [], ['a', 'c'])).toBe(false);
    expect(matchPlacementTags([], ['b'], ['b'])).toBe(true);
    expect(matchPlacementTags([], [], ['b'])).toBe(false);
    expect(matchPlacementTags(['a'], ['b'], ['b'])).toBe(false);
  });
});

describe('filterStage', () => {
  const base = { rootFs: 'preloaded:linux', volumeDrivers: [], placementTags: [] };

  it('applies rootfs, then volume drivers, then tags', () => {
    const cell = makeCell('c', { volumeDrivers: ['nfs'], placementTags: ['a'] });
    expect(filterStage(cell, { ...base, rootFs: 'preloaded:windows', volumeDrivers: ['smb'] })).toBe(
      FilterStage.Rootfs,
    );
    expect(filterStage(cell, { ...base, volumeDrivers: ['smb'] })).toBe(FilterStage.VolumeDrivers);
    expect(filterStage(cell, { ...base, volumeDrivers: ['nfs'] })).toBe(FilterStage.PlacementTags);
    expect(filterStage(cell, { ...base, volumeDrivers: ['nfs'], placementTags: ['a'] })).toBe(FilterStage.Passed);
  });
});

describe('resource fit', () => {
  it('checks memory, disk and one free container', () => {
    const avail = { memoryMb: 100, diskMb: 50, containers: 1 };
    expect(resourceProblems(avail, 100, 50)).toEqual([]);
    expect(resourceProblems(avail, 101, 50)).toEqual(['memory']);
    expect(resourceProblems(avail, 100, 51)).toEqual(['disk']);
    expect(resourceProblems({ ...avail, containers: 0 }, 1, 1)).toEqual(['containers']);
    expect(resourceProblems({ memoryMb: 0, diskMb: 0, containers: 0 }, 1, 1)).toEqual(['containers', 'disk', 'memory']);
  });

  it('maps problem masks to Diego key names', () => {
    expect(maskToProblems(resourceProblemMask(1, 1, 1, 2, 2))).toEqual(['disk', 'memory']);
    expect(maskToProblems(0)).toEqual([]);
  });
});
