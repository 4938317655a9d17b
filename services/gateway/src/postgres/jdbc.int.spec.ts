import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JDK_MISSING, jdkAvailable, postgresJdbcJar, startPostgres } from '@tracegate/test-harness';
import { AGENT, MemoryRecorder, runProgram, startGatewayFixture, type GatewayFixture } from './testing/gateway-fixture.js';

// pgJDBC, the driver of Java applications and of most JDBC-style tools, through the gateway
// unchanged: TLS, server-side prepared statements (prepareThreshold=1 makes it name them at once),
// a pipelined batch inside a transaction, a denied statement that aborts its transaction.

const PROGRAM = `
import java.sql.*;
import java.util.Properties;

public class JdbcThroughGateway {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.setProperty("user", args[1]);
    props.setProperty("password", args[2]);
    props.setProperty("sslmode", "require");
    props.setProperty("sslfactory", "org.postgresql.ssl.NonValidatingFactory");
    props.setProperty("prepareThreshold", "1");
    props.setProperty("ApplicationName", "jdbc-test");
    try (Connection c = DriverManager.getConnection(args[0], props)) {
      try (PreparedStatement ps = c.prepareStatement("SELECT id, kind FROM events WHERE id = ?")) {
        for (int i = 1; i <= 5; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            System.out.println("row " + rs.getInt(1) + " " + rs.getString(2));
          }
        }
      }
      c.setAutoCommit(false);
      try (PreparedStatement insert = c.prepareStatement("INSERT INTO events VALUES (?, ?)")) {
        for (int i = 1000; i < 1010; i++) {
          insert.setInt(1, i);
          insert.setString(2, "jdbc");
          insert.addBatch();
        }
        System.out.println("batch " + insert.executeBatch().length);
      }
      c.commit();
      try (Statement st = c.createStatement()) {
        st.executeUpdate("INSERT INTO events VALUES (2000, 'lost')");
        st.executeUpdate("DELETE FROM events");
        System.out.println("delete ran");
      } catch (SQLException e) {
        System.out.println("denied " + e.getSQLState() + " " + e.getMessage().split("\\n")[0]);
        c.rollback();
      }
      c.setAutoCommit(true);
      try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FILTER (WHERE kind = 'jdbc'), count(*) FILTER (WHERE kind = 'lost') FROM events")) {
        rs.next();
        System.out.println("count " + rs.getLong(1) + " " + rs.getLong(2));
      }
    }
  }
}
`;

describe('pgJDBC through the gateway', () => {
  let target: Awaited<ReturnType<typeof startPostgres>>;
  let gateway: GatewayFixture;
  let jar: string;
  const recorder = new MemoryRecorder();
  const folder = mkdtempSync(path.join(tmpdir(), 'tracegate-jdbc-'));

  before(async () => {
    if (!jdkAvailable()) throw new Error(JDK_MISSING);
    jar = await postgresJdbcJar();
    target = await startPostgres();
    gateway = await startGatewayFixture(target, { recorder });
    const setup = await gateway.direct();
    await setup.query('CREATE TABLE events (id int PRIMARY KEY, kind text)');
    await setup.query("INSERT INTO events SELECT g, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 10) AS g");
    await setup.end();
    writeFileSync(path.join(folder, 'JdbcThroughGateway.java'), PROGRAM);
  });

  after(async () => {
    await gateway?.close();
    await target?.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it('runs prepared statements, a batch in a transaction, and gets a denial as an SQLException with 42501', async () => {
    const result = await runProgram('java', ['-cp', jar, path.join(folder, 'JdbcThroughGateway.java'), `jdbc:postgresql://127.0.0.1:${gateway.port}/billing`, AGENT.name, AGENT.key]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 5), ['row 1 odd', 'row 2 even', 'row 3 odd', 'row 4 even', 'row 5 odd']);
    assert.equal(lines[5], 'batch 10');
    assert.match(lines[6] ?? '', /^denied 42501 .*agents may not delete or drop/);
    // The batch committed; the statement before the denied one went down with its transaction.
    assert.equal(lines[7], 'count 10 0');
    const inserts = recorder.statements.filter((s) => s.text.startsWith('INSERT INTO events VALUES ($1, $2)'));
    assert.equal(inserts.length, 10);
    assert.ok(inserts.every((s) => s.parameterCount === 2 && s.completion?.commandTag === 'INSERT 0 1'));
  });
});
