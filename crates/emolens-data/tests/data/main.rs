//! emolens-data's integration tests, in one binary (one compile and link instead of one per
//! file): bad inputs, FER2013 scanning and caching, and training sources (FER+ votes,
//! affectnet7), on the real data sets.

mod bad_input;
mod fer2013;
mod sources;
