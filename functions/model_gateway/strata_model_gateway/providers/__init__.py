"""Model providers behind one interface (`base.Provider`), each speaking its real protocol."""
