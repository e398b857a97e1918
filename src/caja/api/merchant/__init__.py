"""The merchant API: Conekta v2.x resources, one router per resource."""
