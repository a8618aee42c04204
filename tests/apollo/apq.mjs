// Apollo Client's own persisted-query link against a running rentgraph: the first query goes
// out as a hash over GET, gets PersistedQueryNotFound, and is retried with its text over POST;
// the next one is a hash over GET only. Prints what went over the wire and what came back.
import { ApolloClient, InMemoryCache, HttpLink, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { createHash } from "node:crypto";

const url = process.argv[2];
const wire = [];
const recordingFetch = async (input, init = {}) => {
  const method = (init.method || "GET").toUpperCase();
  const target = typeof input === "string" ? input : input.url;
  const body = init.body ? JSON.parse(init.body) : null;
  const params = new URL(target).searchParams;
  wire.push({
    method,
    withQuery: Boolean(body?.query || params.get("query")),
    withHash: Boolean(body?.extensions?.persistedQuery || params.get("extensions")),
  });
  return fetch(input, init);
};

const link = new PersistedQueryLink({
  sha256: (q) => createHash("sha256").update(q).digest("hex"),
  useGETForHashedQueries: true,
}).concat(new HttpLink({ uri: url, fetch: recordingFetch }));
const client = new ApolloClient({ link, cache: new InMemoryCache() });
const query = gql`
  query ApolloListings($n: Int) {
    properties(first: $n) { edges { node { id title } } }
  }
`;
const first = await client.query({ query, variables: { n: 2 }, fetchPolicy: "network-only" });
const firstWire = wire.splice(0);
const second = await client.query({ query, variables: { n: 3 }, fetchPolicy: "network-only" });
console.log(JSON.stringify({
  first: { wire: firstWire, edges: first.data.properties.edges.length },
  second: { wire, edges: second.data.properties.edges.length },
}));
