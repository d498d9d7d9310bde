// Validates skaffold.yaml against Skaffold's JSON schema for its apiVersion (CI passes the path of
// the schema, which this repository does not ship). Exits 1 with every problem listed.
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import { parse } from 'yaml';

const [schemaFile, configFile = 'skaffold.yaml'] = process.argv.slice(2);
if (!schemaFile) {
  console.error('usage: node scripts/validate-skaffold.mjs <skaffold schema.json> [skaffold.yaml]');
  process.exit(2);
}
const schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
const config = parse(readFileSync(configFile, 'utf8'));
// Skaffold's schema carries editor hints (x-intellij-*) that are not JSON Schema keywords.
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
if (validate(config)) {
  console.log(`${configFile} is valid against ${schemaFile}`);
} else {
  for (const error of validate.errors ?? []) console.error(`${configFile}: ${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`);
  process.exit(1);
}
