import { namedQueryLineage, type ViewDefinitions } from '@tracegate/masking-engine';
import type { StatementLineage } from './ports.js';

const DECLARES = /^\s*(?:DECLARE|PREPARE)\b/i;
const FETCH_FROM = /^\s*(?:FETCH|MOVE)\b[\s\S]*?(?:\b(?:FROM|IN)\s+|^\s*(?:FETCH|MOVE)\s+)(?:"((?:[^"]|"")+)"|([A-Za-z_][\w$]*))\s*;?\s*$/i;
const EXECUTE = /^\s*EXECUTE\s+(?:"((?:[^"]|"")+)"|([A-Za-z_][\w$]*))/i;

/**
 * The queries a session named with SQL — `DECLARE c CURSOR FOR …` and `PREPARE p AS …` — by
 * name, with the lineage of their output columns. A later `FETCH … FROM c` or `EXECUTE p` returns
 * their rows with no query text of its own; without this, a column renamed inside the cursor or
 * the prepared statement would escape a column rule (it would be matched by its alias only).
 */
export class NamedQueries {
  private readonly cursors = new Map<string, StatementLineage>();
  private readonly prepared = new Map<string, StatementLineage>();

  /** Notes a DECLARE or PREPARE the session runs (the cheap test first: most statements are neither), seeing through the target's views when given them. */
  remember(text: string, views?: ViewDefinitions): void {
    if (!DECLARES.test(text)) return;
    const named = namedQueryLineage(text, views);
    if (!named) return;
    (named.kind === 'cursor' ? this.cursors : this.prepared).set(named.name, named.lineage);
  }

  /** The lineage for a FETCH, MOVE or EXECUTE of a query this session named, if it is one. */
  lineageFor(text: string): StatementLineage | undefined {
    const first = text.trimStart().slice(0, 7).toUpperCase();
    if (first.startsWith('FETCH') || first.startsWith('MOVE')) {
      const match = FETCH_FROM.exec(text);
      return match ? this.cursors.get(identifier(match)) : undefined;
    }
    if (first.startsWith('EXECUTE')) {
      const match = EXECUTE.exec(text);
      return match ? this.prepared.get(identifier(match)) : undefined;
    }
    return undefined;
  }
}

/** PostgreSQL folds an unquoted name to lower case; a quoted one keeps its case. */
function identifier(match: RegExpExecArray): string {
  return match[1] !== undefined ? match[1].replaceAll('""', '"') : match[2]!.toLowerCase();
}
