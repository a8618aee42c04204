// Starts GraphiQL on /graphql. Everything it needs is served by this server (the page's
// Content-Security-Policy allows nothing else), and the page has no inline script: the
// endpoint and the headers editor's starting text come from the #graphiql element.
(function () {
  var root = document.getElementById("graphiql");
  var url = new URL(root.dataset.endpoint, window.location.origin).toString();
  // The headers editor starts with an empty bearer token to paste into; until one is pasted
  // the header is left out, so anonymous queries work meanwhile.
  var withoutEmptyToken = function (input, init) {
    var headers = new Headers((init && init.headers) || {});
    if (/^\s*bearer\s*$/i.test(headers.get("authorization") || "")) {
      headers.delete("authorization");
    }
    return fetch(input, Object.assign({}, init, { headers: headers }));
  };
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: GraphiQL.createFetcher({ url: url, fetch: withoutEmptyToken }),
      defaultHeaders: root.dataset.headers,
      defaultEditorToolsVisibility: "headers",
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    })
  );
})();
