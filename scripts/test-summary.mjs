// Prints vitest's JSON results as one plain closing line, "tests: N passed, N failed, N skipped",
// which CI reads to know that tests ran. Exits 1 when the file is missing or reports no test.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'artifacts/test-results.json';
let results;
try {
  results = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  console.error(`test-summary: cannot read ${file}: ${error.message}`);
  process.exit(1);
}
const { numPassedTests: passed, numFailedTests: failed, numPendingTests: pending, numTodoTests: todo } = results;
console.log(`tests: ${passed} passed, ${failed} failed, ${pending + todo} skipped`);
process.exit(passed > 0 && failed === 0 ? 0 : 1);
