"""The training stack: rollout collection, the DataModule and the LightningModule."""
