#!/usr/bin/env node
// The SLB agent arrives with the agent issues; until then the command says so plainly.
process.stderr.write('slb-agent: not implemented yet (see the issue "SLB agent: health checks, VIP state and signed reports")\n');
process.exit(2);
