//! portdial-ppp
