import { parseArgs } from 'node:util';
import { exitWithStartupError } from '@tracegate/runtime';
import { approvalsCommand } from './commands/approvals.js';
import { auditCommand } from './commands/audit.js';
import { grantsCommand } from './commands/grants.js';
import { keyCommand } from './commands/key.js';
import { policyCommand } from './commands/policy.js';
import { sessionsCommand } from './commands/sessions.js';
import { targetCommand } from './commands/target.js';
import { tracesCommand } from './commands/traces.js';
import { status } from './status.js';
import { up } from './up.js';
import { version } from './version.js';

const USAGE = `usage: tracegate <command>

commands:
  up         run every service in this process (what \`npm start\` runs)
  status     ask every service for its health; exits non-zero if any is not serving
             [--json]
  version    print the version
  target     register, list and remove targets (tracegate target help)
  key        create, list and revoke API keys and their SSH public keys (tracegate key help)
  sessions   list, show, replay and verify recorded sessions (tracegate sessions help)
  audit      rebuild the audit projection from the event log (tracegate audit help)
  traces     submit a reasoning trace, show one under a reader grant (tracegate traces help)
  grants     give, list and revoke reader grants for traces (tracegate grants help)
  approvals  list, show, approve and deny held commands (tracegate approvals help)
  policy     lint a policy, run its examples, decide one command offline (tracegate policy help)

Configuration comes from the environment; see the README.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      await up();
      return -1; // keeps running until signalled
    case 'status': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean', default: false } }, strict: true });
      return status(values.json ?? false);
    }
    case 'target':
      return targetCommand(rest);
    case 'key':
      return keyCommand(rest);
    case 'sessions':
      return sessionsCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'traces':
      return tracesCommand(rest);
    case 'grants':
      return grantsCommand(rest);
    case 'approvals':
      return approvalsCommand(rest);
    case 'policy':
      return policyCommand(rest);
    case 'version':
    case '--version':
      process.stdout.write(`tracegate ${version()} (node ${process.versions.node})\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`tracegate: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => exitWithStartupError(error),
);
