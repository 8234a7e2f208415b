//! Plans: what work the scheduler does next, and how far it has got.
