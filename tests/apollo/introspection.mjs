// Sends the introspection query GraphiQL sends (graphql-js's getIntrospectionQuery with the
// options GraphiQL 4 turns on) and prints whether a schema came back, any errors, and its cost.
import { getIntrospectionQuery, buildClientSchema } from "graphql";

const url = process.argv[2];
const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
});
const response = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
  body: JSON.stringify({ query, operationName: "IntrospectionQuery" }),
});
const body = await response.json();
let types = 0;
if (body.data) {
  types = Object.keys(buildClientSchema(body.data).getTypeMap()).length;
}
const cost = body.extensions?.cost ?? null;
console.log(JSON.stringify({ status: response.status, types, errors: body.errors ?? null, cost }));
