// graphql-http's server audits (the GraphQL over HTTP spec's compliance checks) against a
// running rentgraph; prints every audit's id, name, status (ok, warn, error) and reason as JSON.
// tests/api/http.rs runs it and requires no warnings and no errors.
import { serverAudits } from "graphql-http";

const url = process.argv[2];
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetch })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? null });
}
console.log(JSON.stringify(results));
