// Pages with nothing of their own (not found, not allowed): the shared shell only.

import { startShell } from "../shell.js";

startShell().start();
