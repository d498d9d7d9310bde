// Prints vitest's JSON results (one or more files) as one plain closing line,
// "tests: N passed, N failed, N skipped", which CI reads to know that tests ran.
// Exits 1 when a file is missing, or when nothing passed or something failed.
import { readFileSync } from 'node:fs';

const files = process.argv.slice(2);
const total = { passed: 0, failed: 0, skipped: 0 };
let status = 0;
for (const file of files.length > 0 ? files : ['artifacts/test-results.json']) {
  try {
    const results = JSON.parse(readFileSync(file, 'utf8'));
    total.passed += results.numPassedTests;
    total.failed += results.numFailedTests;
    total.skipped += results.numPendingTests + results.numTodoTests;
  } catch (error) {
    console.error(`test-summary: cannot read ${file}: ${error.message}`);
    status = 1;
  }
}
console.log(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(status === 0 && total.passed > 0 && total.failed === 0 ? 0 : 1);
