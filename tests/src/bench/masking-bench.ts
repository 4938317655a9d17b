/**
 * `npm run bench:masking`: what masking costs, in process, on one core.
 *
 * - detectors: the built-in profile's redactText over 1 KB documents (log lines, JSON payloads,
 *   error messages; clean ones, ones with a few values to mask, and ones in fullwidth and other
 *   look-alike characters), in MB/s and milliseconds per 1 KB document, beside the published
 *   anchors (hoop.dev's alcatraz engine about 0.8 ms per 1 KB document, Presidio about 15 ms);
 *   and each detector alone;
 * - rows: maskDataRow on DataRow messages of a realistic result (id, name, email, card number,
 *   SSN, a free-text note, a jsonb document, a timestamp) with a realistic profile, beside copying
 *   the same bytes (the floor for any rewriting proxy) and passing them through untouched;
 * - the stream redactor over 64 KiB chunks (COPY OUT data, SSH output).
 *
 * Writes bench/results/masking-<time>.{json,md} and masking-latest.{json,md}. A benchmark, not a
 * test: nothing here asserts a speed. BENCH_SECONDS (default 3) sets the length of each point.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileProfile, DEFAULT_PROFILE, DETECTOR_NAMES, DetectorSet, foldToAscii, loadSqlParser, PgType, type MaskingProfileSpec, type ResultColumn, type ResultMaskPlan } from '@tracegate/masking-engine';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const workspace = fileURLToPath(new URL('../../../', import.meta.url));
const hashKey = randomBytes(32);

/** Runs `work` repeatedly for BENCH_SECONDS after a short warm-up; returns operations per second. */
function measure(work: () => void): number {
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) work();
  let n = 0;
  const start = performance.now();
  const until = start + SECONDS * 1000;
  let now = start;
  while (now < until) {
    for (let k = 0; k < 16; k++) work();
    n += 16;
    now = performance.now();
  }
  return n / ((now - start) / 1000);
}

/** Pads or cuts a text to exactly 1024 characters at a word boundary-ish. */
function kb(text: string): string {
  let out = text;
  while (out.length < 1024) out += ` ${text}`;
  return out.slice(0, 1024);
}

const CLEAN = [
  kb('2026-11-22T05:22:53.123Z INFO billing.invoice-service request completed method=GET path=/api/v2/invoices?status=open status=200 duration_ms=41 rows=25 region=eu-west-1 version=4.12.7 build=1893'),
  kb(JSON.stringify({ event: 'order.created', orderId: 'ord_93412', items: [{ sku: 'WIDGET-42', qty: 3, price: 19.99 }, { sku: 'GADGET-7', qty: 1, price: 249 }], shipping: { method: 'express', country: 'DE' }, notes: 'leave at the reception desk, second floor' })),
  kb('ERROR: duplicate key value violates unique constraint "invoices_pkey" DETAIL: Key (id)=(184467) already exists. CONTEXT: COPY invoices, line 2291 HINT: check the sequence invoices_id_seq'),
];
const WITH_PII = [
  kb('2026-11-22T05:22:53Z WARN payment failed for jane.doe@example.com card 4111 1111 1111 1111 from 203.0.113.42 retry=2 phone +44 20 7946 0958 customer=8812 amount=129.90 EUR iban DE89370400440532013000'),
  kb(JSON.stringify({ user: { email: 'max.mustermann@example.de', ssn: '123-45-6789', phone: '(415) 555-2671' }, auth: { token: 'ghp_0123456789abcdefghijABCDEFGHIJ012345', aws: 'AKIAIOSFODNN7EXAMPLE' }, db: 'postgres://app:Sup3rS3cret@db.internal:5432/billing' })),
  kb('ERROR: new row for relation "customers" violates check constraint DETAIL: Failing row contains (8812, Jane Doe, jane.doe@example.com, 5555 5555 5555 4444, 078-05-1121, 2001:db8::1).'),
];
const LOOK_ALIKES = [kb('payment by ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ card ４１１１ １１１１ １１１１ １１１１ ssn 123\u200B-45-6789 ref Ｒｅｆｅｒｅｎｃｅ ｎｕｍｂｅｒ ４２ and more fullwidth ｔｅｘｔ ｈｅｒｅ')];

interface DetectorRow {
  readonly corpus: string;
  readonly msPer1KB: number;
  readonly mbPerSecond: number;
}

function benchDetectors(): DetectorRow[] {
  const profile = compileProfile(DEFAULT_PROFILE, { hashKey });
  const rows: DetectorRow[] = [];
  for (const [corpus, docs] of [
    ['clean (no value to mask)', CLEAN],
    ['with PII and secrets', WITH_PII],
    ['Unicode look-alikes', LOOK_ALIKES],
  ] as const) {
    let i = 0;
    const perSecond = measure(() => {
      profile.redactText(docs[i++ % docs.length]!);
    });
    rows.push({ corpus, msPer1KB: 1000 / perSecond, mbPerSecond: (perSecond * 1024) / 1e6 });
  }
  // One large trace dense with values (a finding every ~30 characters): the cost must stay linear.
  const dense = WITH_PII.join(' ').repeat(400).slice(0, 1 << 20);
  const perSecond = measure(() => {
    profile.redactText(dense);
  });
  rows.push({ corpus: 'one 1 MiB document dense with PII', msPer1KB: 1000 / perSecond / 1024, mbPerSecond: (perSecond * (1 << 20)) / 1e6 });
  return rows;
}

function benchEachDetector(): { detector: string; msPer1KB: number }[] {
  const docs = [...CLEAN, ...WITH_PII].map((d) => foldToAscii(d).text);
  return DETECTOR_NAMES.map((name) => {
    const set = new DetectorSet([name]);
    let i = 0;
    const perSecond = measure(() => {
      set.scan(docs[i++ % docs.length]!);
    });
    return { detector: name, msPer1KB: 1000 / perSecond };
  });
}

const BILLING: MaskingProfileSpec = {
  name: 'billing',
  version: 'bench',
  rules: [
    { name: 'emails', column: 'email', strategy: 'hash' },
    { name: 'cards', column: 'card_number', strategy: 'partial', keepLast: 4 },
    { name: 'ssn', column: 'ssn', strategy: 'redact' },
    { name: 'contact', jsonPath: '$..phone', strategy: 'format-preserving' },
    { name: 'free-text', detector: '*', strategy: 'redact' },
  ],
};

const COLUMNS: ResultColumn[] = [
  { name: 'id', tableOid: 16400, columnId: 1, typeOid: 23, format: 0 },
  { name: 'name', tableOid: 16400, columnId: 2, typeOid: PgType.text, format: 0 },
  { name: 'email', tableOid: 16400, columnId: 3, typeOid: PgType.text, format: 0 },
  { name: 'card_number', tableOid: 16400, columnId: 4, typeOid: PgType.varchar, format: 0 },
  { name: 'ssn', tableOid: 16400, columnId: 5, typeOid: PgType.text, format: 0 },
  { name: 'note', tableOid: 16400, columnId: 6, typeOid: PgType.text, format: 0 },
  { name: 'profile', tableOid: 16400, columnId: 7, typeOid: PgType.jsonb, format: 0 },
  { name: 'created_at', tableOid: 16400, columnId: 8, typeOid: 1184, format: 0 },
];

function dataRow(values: readonly string[]): Buffer {
  const parts = values.map((v) => Buffer.from(v, 'utf8'));
  const size = 7 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = Buffer.alloc(size);
  out.write('D', 0, 'latin1');
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(parts.length, 5);
  let at = 7;
  for (const p of parts) {
    at = out.writeInt32BE(p.length, at);
    at += p.copy(out, at);
  }
  return out;
}

function sampleRows(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    dataRow([
      String(100000 + i),
      `Customer ${i}`,
      `customer${i}@example.com`,
      '4111111111111111',
      `123-45-${String(1000 + (i % 9000)).padStart(4, '0')}`,
      // Every value distinct, so nothing is answered from the token cache that repeated values would hit.
      i % 10 === 0 ? `called back on ${i}, new number +1 415 555 ${String(2000 + (i % 7000)).padStart(4, '0')}` : `order ${i}: prefers invoices by post; account in good standing`,
      JSON.stringify({ tier: i % 3 === 0 ? 'gold' : 'silver', phone: `+1 415 555 ${String(1000 + i).padStart(4, '0')}`, tags: ['b2b', 'eu'], seq: i }),
      '2026-11-22 05:22:53.123+00',
    ]),
  );
}

interface RowPoint {
  readonly path: string;
  readonly rowsPerSecond: number;
  readonly nsPerRow: number;
  readonly ofCopy: number;
}

async function benchRows(): Promise<RowPoint[]> {
  await loadSqlParser();
  const profile = compileProfile(BILLING, { hashKey });
  const rows = sampleRows(1000);
  const plan = (columns: ResultColumn[], spec = BILLING): ResultMaskPlan => {
    const result = compileProfile(spec, { hashKey }).planResult(columns, 'SELECT id, name, email, card_number, ssn, note, profile, created_at FROM customers');
    if ('refused' in result) throw new Error(result.refused);
    return result;
  };
  const masked = profile.planResult(COLUMNS, 'SELECT id, name, email, card_number, ssn, note, profile, created_at FROM customers') as ResultMaskPlan;
  const columnsOnly = plan(COLUMNS, { ...BILLING, rules: BILLING.rules.filter((r) => r.column) });
  const untouched = plan(
    COLUMNS.map((c) => ({ ...c, typeOid: 23 })),
    { ...BILLING, rules: [{ name: 'none', column: 'nothing_here', strategy: 'redact' }] },
  );
  const points: { path: string; work: (row: Buffer) => unknown }[] = [
    { path: 'copy the bytes (floor for any rewrite)', work: (row) => Buffer.from(row) },
    { path: 'inactive plan (relayed untouched)', work: (row) => (untouched.active ? untouched.maskDataRow(row) : row) },
    { path: 'column rules only (hash, partial, redact)', work: (row) => columnsOnly.maskDataRow(row) },
    { path: 'realistic profile (column rules, JSON path, all detectors on text)', work: (row) => masked.maskDataRow(row) },
  ];
  const out: RowPoint[] = [];
  let copy = 0;
  for (const { path: name, work } of points) {
    let i = 0;
    const perSecond = measure(() => {
      work(rows[i++ % rows.length]!);
    });
    if (out.length === 0) copy = perSecond;
    out.push({ path: name, rowsPerSecond: perSecond, nsPerRow: 1e9 / perSecond, ofCopy: perSecond / copy });
  }
  return out;
}

function benchStream(): { mbPerSecond: number } {
  const profile = compileProfile(DEFAULT_PROFILE, { hashKey });
  const chunk = Buffer.from([...CLEAN, ...WITH_PII].join('\n').repeat(11).slice(0, 64 * 1024));
  const redactor = profile.createStreamRedactor();
  const perSecond = measure(() => {
    redactor.push(chunk);
  });
  return { mbPerSecond: (perSecond * chunk.length) / 1e6 };
}

async function main(): Promise<void> {
  const detectors = benchDetectors();
  const each = benchEachDetector();
  const rows = await benchRows();
  const stream = benchStream();
  const machine = { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.versions.node, secondsPerPoint: SECONDS };
  const sampleRowBytes = sampleRows(1)[0]!.length;
  const md = [
    `# masking, in process on one core, ${SECONDS} s per point, ${machine.cpus} cores (${machine.model}), Node ${machine.node}`,
    '',
    '## Detectors over free text (the built-in profile `default`: all 15 detectors, redactText)',
    '',
    '| documents (1 KB each) | ms per 1 KB document | MB/s |',
    '|---|---|---|',
    ...detectors.map((d) => `| ${d.corpus} | ${d.msPer1KB.toFixed(4)} | ${d.mbPerSecond.toFixed(1)} |`),
    '| *anchor: hoop.dev alcatraz (published)* | *≈0.8* | |',
    '| *anchor: Presidio (published)* | *≈15* | |',
    '',
    '## Each detector alone (ASCII documents, clean and with PII)',
    '',
    '| detector | µs per 1 KB document |',
    '|---|---|',
    ...each.map((d) => `| ${d.detector} | ${(d.msPer1KB * 1000).toFixed(2)} |`),
    '',
    `## maskDataRow (8-column customer rows, ${sampleRowBytes} bytes each, text format)`,
    '',
    '| path | rows/s | ns per row | of copying |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.path} | ${r.rowsPerSecond.toFixed(0)} | ${r.nsPerRow.toFixed(0)} | ${r.ofCopy.toFixed(2)} |`),
    '',
    `## Stream redactor (64 KiB chunks, all detectors): ${stream.mbPerSecond.toFixed(1)} MB/s`,
    '',
  ].join('\n');
  const json = `${JSON.stringify({ machine, detectors, each, rows, stream, sampleRowBytes }, null, 2)}\n`;
  const outDir = path.join(workspace, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  for (const name of [`masking-${stamp}`, 'masking-latest']) {
    writeFileSync(path.join(outDir, `${name}.json`), json);
    writeFileSync(path.join(outDir, `${name}.md`), md);
  }
  process.stdout.write(md);
}

await main();
