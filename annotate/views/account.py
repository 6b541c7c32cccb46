"""The signed-in user's account page: API tokens (created, listed, revoked)."""

urlpatterns: list = []
