import pg from 'pg';

/**
 * Waits (briefly) until no other client is connected before a PostgreSQL is stopped.
 *
 * pg-pool's `end()` resolves as soon as it has asked each idle connection to close, not when the
 * sockets are gone. Stopping the server in that gap makes it send "terminating connection due to
 * administrator command" (57P01) to a connection whose pool may have no 'error' listener left,
 * and node-postgres turns that into an uncaught exception: a flaky crash at the very end of a
 * clean shutdown. Giving the closing connections a moment removes the race.
 */
export async function waitForClientsToLeave(url: string, timeoutMs = 3000): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
      );
      if ((rows[0]?.n ?? 0) === 0 || Date.now() >= deadline) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch {
    // The server is already unreachable: nothing to wait for.
  } finally {
    await client.end().catch(() => undefined);
  }
}
