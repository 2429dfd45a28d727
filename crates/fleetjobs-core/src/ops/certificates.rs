//! (being converted)
