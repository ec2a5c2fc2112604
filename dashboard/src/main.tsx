import "@fontsource-variable/archivo/wdth.css";
import "@fontsource/ibm-plex-mono/400.css";
import "@fontsource/ibm-plex-mono/600.css";
import "./index.css";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { adoptKeyFromUrl } from "./api/auth";
import { LiveProvider } from "./live/LiveProvider";

const client = new QueryClient({
  defaultOptions: {
    // Live events keep loaded data current; a reload is only for what they cannot patch.
    queries: { staleTime: 30_000, retry: 1, refetchOnWindowFocus: false },
  },
});

// Before anything asks the gateway: `orch up` hands the key over in the URL's fragment.
adoptKeyFromUrl();

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <LiveProvider>
          <App />
        </LiveProvider>
      </QueryClientProvider>
    </StrictMode>,
  );
}
