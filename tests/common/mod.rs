pub mod ac;
pub mod lab;
