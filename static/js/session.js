// Who the page was rendered for (<body data-role>), so it offers only what that role may do.
// The server checks every request anyway; this only keeps a viewer from buttons that fail.

const RANK = { viewer: 1, operator: 2, admin: 3 };

export function may(role) {
  return (RANK[document.body.dataset.role] || 0) >= RANK[role];
}
