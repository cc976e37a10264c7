// Moved to src/lifecycle/names.ts. This re-export stays only for callers outside the lifecycle refactor that still
// import it from here (test/integration/cell-confinement.test.ts); import from src/lifecycle instead.
export * from '../lifecycle/names.ts';
