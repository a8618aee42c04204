//! `[graphql]`: the schema's limits, paging and dataloader batching.
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Parsed documents kept by their text, so a repeated operation is not parsed or checked
    /// again (0: none).
    pub document_cache_entries: u64,
    pub max_page_size: usize,
    pub default_page_size: usize,
    pub max_depth: usize,
    pub max_document_bytes: usize,
    pub max_tokens: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives_per_field: usize,
    pub max_duplicate_fields: usize,
    pub max_selected_fields: usize,
    /// Listings one owner may create in 24 hours (admins are not limited); 0: no limit.
    pub max_listings_per_owner_per_day: u64,
    /// Hosts image URLs may point at (exact, or `*.domain` for its subdomains); empty: any host.
    #[serde(deserialize_with = "crate::config::list_or_csv")]
    pub image_hosts: Vec<String>,
    /// List fields nested under `__schema` / `__type` (types, fields, args, ...).
    pub max_introspection_lists: usize,
    /// Bounds on argument values: items in one list argument, characters in one string.
    pub max_list_items: usize,
    pub max_string_chars: usize,
    /// How deep search results may be paged.
    pub max_search_offset: u64,
    /// searchProperties ranks at most this many matches (the first the index yields that pass
    /// the filter); its cost grows with it.
    pub max_search_ranked: u64,
    pub introspection: bool,
    /// "Did you mean ...?" in validation errors (they reveal the schema).
    pub suggestions: bool,
    pub dataloader_delay_us: u64,
    pub dataloader_max_batch_size: usize,
}

impl GraphqlSettings {
    pub fn input_limits(&self) -> crate::limits::InputLimits {
        crate::limits::InputLimits {
            max_list_items: self.max_list_items,
            max_string_chars: self.max_string_chars,
        }
    }

    pub fn document_limits(&self) -> crate::limits::DocumentLimits {
        crate::limits::DocumentLimits {
            max_document_bytes: self.max_document_bytes,
            max_tokens: self.max_tokens,
            max_depth: self.max_depth,
            max_aliases: self.max_aliases,
            max_root_fields: self.max_root_fields,
            max_directives_per_field: self.max_directives_per_field,
            max_duplicate_fields: self.max_duplicate_fields,
            max_selected_fields: self.max_selected_fields,
            max_introspection_lists: self.max_introspection_lists,
        }
    }

    pub fn dataloader_delay(&self) -> Duration {
        Duration::from_micros(self.dataloader_delay_us)
    }
}
