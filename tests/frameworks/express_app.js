// The Express app of tests/e2e_frameworks.py: routes only, no business.
// Each route answers "RAN <method> <route>" with the method its handler
// sees, so the test knows which handler a request reached and as what.
// Express as Debian ships it (node-express 4.18): default router options
// (caseSensitive false, strict false), no middleware.
// Usage: node express_app.js PORT   (NODE_PATH must reach /usr/share/nodejs)
"use strict";
const express = require("express");

const app = express();
const ran = (route) => (req, res) => {
  res.type("text/plain").send("RAN " + req.method + " " + route + "\n");
};
app.all("/v1/orders", ran("orders"));
app.all("/v1/orders/:id", ran("order"));
app.all("/v1/admin/users", ran("admin"));
app.listen(Number(process.argv[2]), "127.0.0.1");
