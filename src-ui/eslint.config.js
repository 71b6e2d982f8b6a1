// The UI's lint rules: ESLint's and typescript-eslint's recommended sets,
// and React's rules of hooks. Formatting is Prettier's (`.prettierrc.json`).
import js from "@eslint/js";
import globals from "globals";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default tseslint.config(
  {
    // Generated from the Rust types by ts-rs (`cargo xtask bindings`).
    ignores: [
      "dist/",
      "e2e/out/",
      "src/protocol/*.ts",
      "!src/protocol/index.ts",
      "src/desktop/bindings/*.ts",
      "!src/desktop/bindings/index.ts",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["src/**/*.{ts,tsx}", "tests/**/*.{ts,tsx}"],
    languageOptions: { globals: globals.browser },
    plugins: { "react-hooks": reactHooks },
    rules: {
      "react-hooks/rules-of-hooks": "error",
      "react-hooks/exhaustive-deps": "error",
    },
  },
  {
    // The end-to-end runs and benchmarks are Node scripts driving Chromium.
    files: ["e2e/**/*.mjs", "*.js", "*.ts"],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
);
