// Type-aware linting: typescript-eslint's recommended type-checked rules, with floating promises forbidden, and the
// layering of src/ (../shared/design.md): imports go only downward,
//   lib ← crds ← lifecycle ← controllers | cell-agent | bbs | webhooks ← cmd ← main
// (auction, pure, sits beside lifecycle for the controllers). Sibling layers never import each other: what two of
// them share belongs in a layer below. Tests may import anything.
import js from '@eslint/js';
import path from 'node:path';
import tseslint from 'typescript-eslint';

const SRC = path.join(import.meta.dirname, 'src');

/** For each layer (a folder of src/, or main.ts), the layers it may import from (besides itself). */
const LAYERS = {
  lib: [],
  crds: ['lib'],
  auction: [],
  lifecycle: ['lib', 'crds'],
  controllers: ['lib', 'crds', 'lifecycle', 'auction'],
  'cell-agent': ['lib', 'crds', 'lifecycle'],
  bbs: ['lib', 'crds', 'lifecycle'],
  webhooks: ['lib', 'crds'],
  cmd: ['lib', 'crds', 'lifecycle', 'auction', 'controllers', 'cell-agent', 'bbs', 'webhooks'],
  main: ['lib', 'crds', 'lifecycle', 'auction', 'controllers', 'cell-agent', 'bbs', 'webhooks', 'cmd'],
  // The kubectl plugin (src/kubectl-diego.ts and src/kubectl-diego/): a client of the API, beside cmd; nothing
  // imports it.
  'kubectl-diego': ['lib', 'crds', 'lifecycle', 'auction'],
};

/**
 * Imports that break the layering today, each to be moved down when its part is next worked on (file → target).
 * Nothing may be added here: a new import across layers fails the lint.
 */
const KNOWN_DEBTS = {
  // The typed client and the CRD installer are typed on the CRDs: lib/kube + lib/resources belong above crds.
  'lib/kube.ts': ['crds/crd.ts', 'crds/kinds.ts'],
  'lib/resources.ts': ['crds/kinds.ts', 'crds/models.ts'],
  // Full validation (zod + Diego's byte limits) is a crds concern that lives in webhooks.
  'crds/models.ts': ['webhooks/validate.ts'],
  'controllers/converger.ts': ['webhooks/validate.ts'],
  'controllers/tasks.ts': ['webhooks/validate.ts'],
  // The signal helper belongs in lib.
  'cell-agent/drain.ts': ['cmd/signals.ts'],
};

// A file at the top of src/ is the layer of its name (main.ts → main, kubectl-diego.ts → kubectl-diego).
const layerOf = (rel) => (rel === 'main.ts' ? 'main' : rel.split(path.sep)[0].replace(/\.ts$/, ''));

const layering = {
  meta: { type: 'problem', schema: [], messages: { up: '{{from}} may not import {{to}}: {{why}}' } },
  create(context) {
    const file = context.filename;
    const rel = path.relative(SRC, file);
    if (rel.startsWith('..') || /\.test\.ts$/.test(file)) return {};
    const from = layerOf(rel);
    const allowed = LAYERS[from];
    if (!allowed) return {};
    const check = (node) => {
      const source = node.source?.value;
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = path.relative(SRC, path.resolve(path.dirname(file), source));
      const debts = KNOWN_DEBTS[rel.split(path.sep).join('/')] ?? [];
      if (debts.includes(target.split(path.sep).join('/'))) return;
      if (target.startsWith('..')) {
        const why = 'code outside src/ (test, hack) is for tests and tools only';
        return context.report({ node: node.source, messageId: 'up', data: { from: rel, to: source, why } });
      }
      const to = layerOf(target);
      if (to === from || allowed.includes(to)) return;
      const why = `${from} imports only ${[from, ...allowed].join(', ')} (imports go down: lib ← crds ← lifecycle ← controllers | cell-agent | bbs | webhooks ← cmd ← main)`;
      context.report({ node: node.source, messageId: 'up', data: { from: rel, to: source, why } });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', 'config/', 'charts/', 'hack/tools/', 'src/bbs/gen/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { diego: { rules: { layering } } },
    rules: { 'diego/layering': 'error' },
  },
  {
    // Tests build loosely typed manifests on purpose (including invalid ones).
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
