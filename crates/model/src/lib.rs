//! Machine learning: the feature path shared by training and serving, the ONNX model, and the
//! cross-request batching executor. Knows neither the store nor GraphQL.
pub mod batcher;
pub mod features;
pub mod model;
