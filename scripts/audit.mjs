// `pnpm audit:deps` (and CI): fails on any high or critical advisory that has a fix; advisories with
// no fixed version yet are printed as warnings. When the registry offers no audit endpoint (some
// mirrors answer 405), says so plainly and exits 0: nothing was checked, and the log shows it.
import { spawnSync } from 'node:child_process';

const run = spawnSync('pnpm', ['audit', '--json', '--audit-level', 'low'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;

let report;
try {
  report = JSON.parse(run.stdout);
} catch {
  if (/ERR_PNPM_AUDIT_BAD_RESPONSE|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|responded with \d{3}/.test(output)) {
    console.warn(`audit: WARNING — the registry's audit endpoint is not available here, so no advisory was checked:\n${output.trim()}`);
    process.exit(0);
  }
  console.error(`audit: pnpm audit failed:\n${output.trim()}`);
  process.exit(1);
}

const serious = Object.values(report.advisories ?? {}).filter((advisory) => ['high', 'critical'].includes(advisory.severity));
const hasFix = (advisory) => advisory.patched_versions && advisory.patched_versions !== '<0.0.0';
const describe = (advisory) => `  ${advisory.severity} ${advisory.module_name} ${advisory.vulnerable_versions}: ${advisory.title} (${advisory.url}); fixed in ${advisory.patched_versions}`;

const fixable = serious.filter(hasFix);
const unfixable = serious.filter((advisory) => !hasFix(advisory));
if (unfixable.length > 0) console.warn(`audit: WARNING — high-severity advisories with no fix yet:\n${unfixable.map(describe).join('\n')}`);
if (fixable.length > 0) {
  console.error(`audit: high-severity advisories that have a fix (upgrade or override them):\n${fixable.map(describe).join('\n')}`);
  process.exit(1);
}
const counts = report.metadata?.vulnerabilities ?? {};
console.log(`audit: no fixable high-severity advisory (${Object.entries(counts).map(([level, n]) => `${level} ${n}`).join(', ') || 'none reported'})`);
