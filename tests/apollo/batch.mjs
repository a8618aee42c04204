// Apollo Client's BatchHttpLink against a running rentgraph: three queries issued together go
// out as one POST of an array, and each gets its own answer (one of them an error). Prints
// what went over the wire and what came back.
import { ApolloClient, InMemoryCache, gql } from "@apollo/client";
import { BatchHttpLink } from "@apollo/client/link/batch-http";

const url = process.argv[2];
const wire = [];
const recordingFetch = async (input, init = {}) => {
  const body = init.body ? JSON.parse(init.body) : null;
  wire.push({ method: (init.method || "GET").toUpperCase(), operations: Array.isArray(body) ? body.length : 1 });
  return fetch(input, init);
};
const client = new ApolloClient({
  link: new BatchHttpLink({ uri: url, fetch: recordingFetch, batchMax: 10, batchInterval: 20 }),
  cache: new InMemoryCache(),
});
const listings = (n) => client.query({
  query: gql`query Listings($n: Int) { properties(first: $n) { edges { node { id } } } }`,
  variables: { n },
  fetchPolicy: "network-only",
});
const broken = client
  .query({ query: gql`query Broken { properties(first: -1) { totalCount } }`, fetchPolicy: "network-only" })
  .then(() => "no error", (e) => e.errors?.[0]?.extensions?.code ?? e.message);
const [two, three, error] = await Promise.all([listings(2), listings(3), broken]);
console.log(JSON.stringify({
  wire,
  edges: [two.data.properties.edges.length, three.data.properties.edges.length],
  error,
}));
