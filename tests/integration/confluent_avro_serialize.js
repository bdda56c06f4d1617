// Writes Avro records with Confluent's own serializer
// (@confluentinc/schemaregistry's AvroSerializer) against a schema registry,
// for schema_registry_test's wire-format cross-check.
//
//   node confluent_avro_serialize.js REGISTRY_URL INPUT.json OUTPUT.txt
//
// INPUT.json: {"writes": [{"topic": T, "schema": AVRO_JSON, "records": [...]}]}
// Each write registers its schema under its topic's value subject (the
// serializer's default subject name strategy) and serializes its records
// with that schema id. A record field given as {"$hex": "..."} is a byte
// string. OUTPUT.txt gets one line per record: the schema id, a space and
// the serialized message in hex.
'use strict';
const fs = require('fs');
const {
  AvroSerializer,
  SchemaRegistryClient,
  SerdeType,
} = require('@confluentinc/schemaregistry');

function bytesFromHex(value) {
  if (Array.isArray(value)) return value.map(bytesFromHex);
  if (value === null || typeof value !== 'object') return value;
  if (typeof value['$hex'] === 'string') return Buffer.from(value['$hex'], 'hex');
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = bytesFromHex(v);
  return out;
}

async function main() {
  const [url, inputPath, outputPath] = process.argv.slice(2);
  const input = JSON.parse(fs.readFileSync(inputPath, 'utf8'));
  const client = new SchemaRegistryClient({baseURLs: [url]});
  const lines = [];
  for (const write of input.writes) {
    const id = await client.register(
        `${write.topic}-value`, {schemaType: 'AVRO', schema: write.schema});
    const serializer = new AvroSerializer(
        client, SerdeType.VALUE, {useSchemaId: id, autoRegisterSchemas: false});
    for (const record of write.records) {
      const bytes = await serializer.serialize(write.topic, bytesFromHex(record));
      lines.push(`${id} ${bytes.toString('hex')}`);
    }
  }
  fs.writeFileSync(outputPath, lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
