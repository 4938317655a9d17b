import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ALL_TOPICS, topicForAggregate } from './topic-catalogue.js';

const doc = readFileSync(new URL('../../../docs/events.md', import.meta.url), 'utf8');

describe('topic catalogue', () => {
  it('is documented for SIEM consumers: each topic with its key, partitions and retention', () => {
    for (const topic of ALL_TOPICS) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${topic.name}\` |`));
      assert.ok(row, `docs/events.md has a row for ${topic.name}`);
      const cells = row.split('|').map((c) => c.trim());
      assert.equal(cells[2], topic.key, `${topic.name}: documented key`);
      assert.equal(cells[3], String(topic.partitions), `${topic.name}: documented partitions`);
      assert.equal(cells[4], topic.retentionMs === -1 ? 'forever' : `${topic.retentionMs} ms`, `${topic.name}: documented retention`);
    }
  });

  it('routes every aggregate to exactly one topic', () => {
    const aggregates = ALL_TOPICS.flatMap((t) => t.aggregates);
    assert.equal(new Set(aggregates).size, aggregates.length, 'no aggregate on two topics');
    assert.equal(topicForAggregate('session').name, 'tracegate.sessions.v1');
    assert.throws(() => topicForAggregate('nonsense'), /no topic carries events of aggregate 'nonsense'/);
  });
});
