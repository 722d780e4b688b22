// /login: no live connection (nobody is signed in yet); only the theme toggle works.

import { setupTheme } from "../shell.js";

setupTheme();
