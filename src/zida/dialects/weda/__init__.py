"""The WeDa dialect: WeDa's sign-in service, data models, workflow actions and permission API over the core."""
