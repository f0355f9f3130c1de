"""The worker: arms runs ahead of time, releases them at fire_at, reports back."""
