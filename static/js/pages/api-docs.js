// /api/docs: Swagger UI (static/vendor/swagger-ui, loaded before this module) on the API's
// OpenAPI document. "Try it out" sends requests as the panel does: with the session cookie
// and, for a change, the CSRF token; a token set with "Authorize" goes as a bearer header.

import { csrfHeader } from "../api.js";
import { $ } from "../dom.js";
import { startShell } from "../shell.js";

startShell().start();

const root = $("#swagger-ui");
// Swagger UI's own dark styles follow the panel's theme (html[data-theme]).
const paintTheme = () => document.documentElement.classList.toggle("dark-mode", document.documentElement.dataset.theme !== "light");
new MutationObserver(paintTheme).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
paintTheme();

window.ui = window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  filter: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  persistAuthorization: false,
  tryItOutEnabled: false,
  // No "validate at swagger.io" badge: the page talks to this server only.
  validatorUrl: null,
  requestInterceptor: (request) => {
    Object.assign(request.headers, csrfHeader(request.method || "GET"));
    return request;
  },
});
